"""Asset inventory on the controller: the latest asset record of each host in the store, its
assessment (end of life, patch level, known vulnerabilities) and what changed between scans.

    records.latest(conn, site=None)    -> list[HostAsset]
    diff.diff_assets(old, new)         -> AssetDiff
"""
