"""plantsweep controller: inventory -> host selection -> per-host session -> scan log -> results.

Usable as a library; `plantsweep` the command is a thin shell over it.
"""

__version__ = "0.1.0"
