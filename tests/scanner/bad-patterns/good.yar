rule Good_Marker
{
    strings:
        $m = "PLANTSWEEP-TEST-MARKER-7f3a9c"
    condition:
        $m
}
