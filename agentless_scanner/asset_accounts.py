"""Local users and groups on Linux: /etc/passwd, /etc/group, and /etc/shadow (root only) for
whether a password login is locked. Directory services (LDAP, AD via sssd) are not listed."""

from agentless_scanner.asset_common import read_text, section

MAX_USERS = 5000
MAX_GROUPS = 5000


def parse_passwd(text):
    items = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or not parts[0] or parts[0].startswith(("+", "-", "#")):
            continue  # NIS compat lines and comments are not accounts
        try:
            uid, gid = int(parts[2]), int(parts[3])
        except ValueError:
            continue
        items.append(
            {
                "name": parts[0],
                "uid": uid,
                "gid": gid,
                "home": parts[5] or None,
                "shell": parts[6] or None,
                "locked": None,
            }
        )
    return items


def parse_shadow(text):
    """{user: locked}: locked means a "!" before the hash (passwd -l, usermod -L), as
    ``passwd -S`` reports it; "*" (no password ever set: key login still works) is not."""
    locked = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 2 and parts[0]:
            locked[parts[0]] = parts[1].startswith("!")
    return locked


def parse_group(text):
    items = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or not parts[0] or parts[0].startswith(("+", "-", "#")):
            continue
        try:
            gid = int(parts[2])
        except ValueError:
            continue
        members = [m for m in parts[3].split(",") if m]
        items.append({"name": parts[0], "gid": gid, "members": members})
    return items


def users(passwd="/etc/passwd", shadow="/etc/shadow"):
    text = read_text(passwd, limit=16 << 20)
    if text is None:
        return section([], passwd, "cannot read %s" % passwd)
    items = parse_passwd(text)
    shadow_text = read_text(shadow, limit=16 << 20)
    source = passwd
    if shadow_text is not None:
        locked = parse_shadow(shadow_text)
        for item in items:
            item["locked"] = locked.get(item["name"])
        source = "%s + %s" % (passwd, shadow)
    return section(items, source, cap=MAX_USERS)


def groups(group="/etc/group"):
    text = read_text(group, limit=16 << 20)
    if text is None:
        return section([], group, "cannot read %s" % group)
    return section(parse_group(text), group, cap=MAX_GROUPS)
