"""placeholder"""
def check_budget(attempt, estimate):
    return None
