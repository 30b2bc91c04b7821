rule Broken_Rule
{
    strings:
        $a = "unterminated
    condition:
        $a and
}
