"""Scores (0-100) and levels of findings.

A match gets its score from its source: a YARA rule's ``score`` meta (an integer 0-100), else
its ``severity`` meta (a number 0-100 or a name, see SEVERITY_SCORES), else DEFAULT_YARA_SCORE;
a hash or filename IOC from its entry (hash IOCs default to DEFAULT_HASH_SCORE: a listed hash
is a known-bad file). Several matches on one file combine into one file score: the highest
score, plus half of the second, a quarter of the third and so on, capped at 100. So one
notice stays a notice, while two independent warnings on one file make an alert.

Levels: info < 40 <= notice < 60 <= warning < 80 <= alert.
"""

LEVELS = ("info", "notice", "warning", "alert")
THRESHOLDS = (("alert", 80), ("warning", 60), ("notice", 40))
DEFAULT_YARA_SCORE = 70
DEFAULT_HASH_SCORE = 100
DEFAULT_FILENAME_SCORE = 60
SEVERITY_SCORES = {
    "info": 20,
    "informational": 20,
    "low": 40,
    "notice": 40,
    "medium": 60,
    "moderate": 60,
    "warning": 60,
    "high": 80,
    "alert": 80,
    "critical": 100,
}


def clamp(value):
    return max(0, min(100, int(value)))


def level_of(score):
    for name, threshold in THRESHOLDS:
        if score >= threshold:
            return name
    return "info"


def level_at_least(level, minimum):
    """True if ``level`` is ``minimum`` or above (unknown levels count as info)."""
    rank = LEVELS.index(level) if level in LEVELS else 0
    return rank >= LEVELS.index(minimum)


def parse_score(value):
    """An integer 0-100 from an int or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return clamp(value)
    if isinstance(value, str) and value.strip().isdigit():
        return clamp(int(value.strip()))
    return None


def yara_score(meta):
    """Score of a YARA match from the rule's metadata."""
    score = parse_score(meta.get("score"))
    if score is not None:
        return score
    severity = meta.get("severity")
    score = parse_score(severity)
    if score is not None:
        return score
    if isinstance(severity, str) and severity.strip().lower() in SEVERITY_SCORES:
        return SEVERITY_SCORES[severity.strip().lower()]
    return DEFAULT_YARA_SCORE


def combine(scores):
    """One file score from the scores of its matches."""
    total = 0.0
    for rank, score in enumerate(sorted(scores, reverse=True)):
        total += score / float(2**rank)
    return clamp(total)
