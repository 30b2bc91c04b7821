// plantsweep test rules (tests/test_scanner_*.py).

rule PlantsweepTest_Marker
{
    meta:
        description = "plantsweep test marker string"
        author = "plantsweep tests"
    strings:
        $m = "PLANTSWEEP-TEST-MARKER-7f3a9c"
    condition:
        $m
}

// Needs the external variables: matches only when the scanner passes the real
// values for this file at match time (and compiles only because they are defined).
rule PlantsweepTest_ExternalVars : probe
{
    meta:
        description = "test rule that needs external variables"
        score = 50
    strings:
        $s = "EXTVAR-PROBE"
    condition:
        $s and filename == "probe.ps1" and extension == ".ps1" and filetype == "SCRIPT"
        and owner == "root" and filepath endswith "/probe.ps1"
}
