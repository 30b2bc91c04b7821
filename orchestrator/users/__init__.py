"""Store users, roles and sessions (21 CFR Part 11 §11.10(d)(g), §11.100, §11.200, §11.300).

accounts.py: users, the role/permission matrix, password checks with lockout;
passwords.py: Argon2id hashing and reading passwords; sessions.py: `plantsweep login` and
`current_actor` (who is acting); cli.py: `plantsweep user|login|logout|whoami`.
"""

# The roles, weakest first (accounts.py holds what each may do); here so the command line can
# offer them without importing the store.
ROLES = ("operator", "reviewer", "administrator")
