"""Who may use the dashboard: roles, the users file with argon2 hashes, the session secret, and the
failed-login limiter. The web layer (`dashboard.access`) enforces them; `python -m pipeline users`
manages the users file. Nothing here imports Flask or Dash.
"""
