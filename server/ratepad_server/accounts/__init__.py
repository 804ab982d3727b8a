"""Accounts: one login throttle for every way in, the password policy and initial passwords,
password changes, and the admin site that uses them."""
