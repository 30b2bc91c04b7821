"""The site-gate checkpoint (practice 4): devices entering or leaving the site are scanned, and a
device is admitted only with a recent clean scan made with current patterns.

    plantsweep checkpoint scan /media/stick --device-id USB-0042 --owner "Vendor Ltd / A. Smith" \\
        --reason "firmware update line 3"
    plantsweep checkpoint verify USB-0042 --pass-out pass.pdf     # exit 0 admitted, 1 refused
    plantsweep checkpoint policy --site basel --max-age 2d --reason "QA decision 2026-11"
    plantsweep checkpoint list [--device ID] [--json]

`policy.py` holds the per-site admission policy, `gate.py` the scan, the verdict and the pass,
`cli.py` the command line.
"""

# Choices the command line needs to build its parser without importing the store.
DIRECTIONS = ("entry", "exit")
LEVELS = ("notice", "warning", "alert")
