"""Monte Carlo checks of size and coverage through the public API (marker ``montecarlo``)."""
