/*
  plantsweep demo pattern: a rule on the file's name (external variable `filename`), as
  public rule sets such as signature-base write them. Harmless: it matches a small file
  named plantsweep-demo-dropper.cmd, whatever it holds.
  Written for plantsweep (Apache-2.0).
*/
rule PlantSweep_Demo_Dropper_Name
{
    meta:
        description = "plantsweep demo file name (harmless): a path rule, level notice"
        author = "plantsweep"
        score = 50
    condition:
        filename == "plantsweep-demo-dropper.cmd" and filesize < 4KB
}
