/*
  plantsweep demo pattern: the EICAR anti-virus test file.
  Written for plantsweep (Apache-2.0). The string is given in hex so this rule file
  itself is never taken for the test file by another scanner.
*/
rule EICAR_Test_File
{
    meta:
        description = "EICAR anti-virus test file (harmless, used to prove detection works)"
        author = "plantsweep"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
        hash_sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
        score = 40
    strings:
        // X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*
        $eicar = { 58 35 4F 21 50 25 40 41 50 5B 34 5C 50 5A 58 35 34 28 50 5E 29 37
                   43 43 29 37 7D 24 45 49 43 41 52 2D 53 54 41 4E 44 41 52 44 2D 41
                   4E 54 49 56 49 52 55 53 2D 54 45 53 54 2D 46 49 4C 45 21 24 48 2B
                   48 2A }
    condition:
        // The test file is the 68-byte string at offset 0, optionally followed by
        // whitespace, 128 bytes at most.
        $eicar at 0 and filesize <= 128
}
