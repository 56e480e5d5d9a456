"""A clock that tests move by hand, for code that takes `now` as a callable (emulator, runs)."""


class ManualClock:
    """Returns the time it was last set to; tests advance it instead of sleeping."""

    def __init__(self, time_utc: float) -> None:
        self.time_utc = time_utc

    def __call__(self) -> float:
        return self.time_utc
