"""The offline USB kit for Linux hosts: build it onto a stick (usb.py), remember it and its
log key on the controller (registry.py), and the texts that land on the stick (run_sh.py,
readme_txt.py). `plantsweep logs import` (orchestrator/logs_import.py) brings the logs back.
"""
