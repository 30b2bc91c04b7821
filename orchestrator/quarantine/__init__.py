"""Quarantine with restore: files taken off hosts into an encrypted vault on the controller.

    vault = Vault.open()                                          # orchestrator.quarantine.vault
    summary = apply_action(session, log, hostvars, ActionPolicy("quarantine", vault=vault))
    restore_file(session, plain_copy, vault.entry("3f9a1c0d"))    # orchestrator.quarantine.remote

`apply` is the policy (mission-critical hosts, levels, records in the scan log), `remote` the
host side, `vault` the encrypted store, `cli` the `plantsweep quarantine` command. Import the
modules themselves: this package stays empty so the command line starts fast.
"""
