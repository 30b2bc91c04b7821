/*
  plantsweep demo patterns: harmless marker strings that show scoring at work.
  Written for plantsweep (Apache-2.0). The markers are given in hex so this file itself
  never matches them. Make a test file with:
      printf 'PLANTSWEEP-DEMO-SIGNATURE-ALERT\n' > demo-alert.bin
*/
rule PlantSweep_Demo_Alert
{
    meta:
        description = "plantsweep demo marker (harmless): a score 85 finding, level alert"
        author = "plantsweep"
        score = 85
    strings:
        // PLANTSWEEP-DEMO-SIGNATURE-ALERT
        $m = { 50 4C 41 4E 54 53 57 45 45 50 2D 44 45 4D 4F 2D 53 49 47 4E 41 54 55 52 45
               2D 41 4C 45 52 54 }
    condition:
        $m
}

rule PlantSweep_Demo_Medium
{
    meta:
        description = "plantsweep demo marker (harmless): severity medium, level warning"
        author = "plantsweep"
        severity = "medium"
    strings:
        // PLANTSWEEP-DEMO-SIGNATURE-MEDIUM
        $m = { 50 4C 41 4E 54 53 57 45 45 50 2D 44 45 4D 4F 2D 53 49 47 4E 41 54 55 52 45
               2D 4D 45 44 49 55 4D }
    condition:
        $m
}
