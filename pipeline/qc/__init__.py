"""Quality control that runs by itself: checks, trends and alarms on every stored snapshot."""
