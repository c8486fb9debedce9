"""`chatops policy show`: the effective policy as a table an operator can read."""

from __future__ import annotations

from chatops.policy.rules import SupportRules


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def _roles(rules: SupportRules, roles: list[str]) -> str:
    if set(roles) == set(rules.policy.admin_roles):
        return "any admin role"
    return ", ".join(rules.policy.admin_roles[r] for r in roles)


def render_policy(rules: SupportRules) -> str:
    """Categories, severities, targets, calendars and phone lines, as plain text."""
    policy = rules.policy
    parts = [
        f"{policy.name} (version {policy.version}), support time zone "
        f"{policy.support_timezone} ({policy.support_timezone_label})",
        "",
    ]
    rows = []
    for key, category in policy.categories.items():
        for severity, target in category.targets.items():
            minutes = rules.target_minutes(key, severity)
            rows.append(
                [
                    category.label,
                    f"Sev {severity}",
                    rules.target_label(key, severity),
                    f"{minutes} business min",
                    policy.calendars[target.calendar].label,
                    _roles(rules, category.allowed_roles)
                    if severity == next(iter(category.targets))
                    else "",
                ]
            )
    parts.append("First-response targets (SC-17, SC-19..SC-21)")
    parts.append(
        _table(["category", "severity", "target", "as minutes", "calendar", "roles (SC-2)"], rows)
    )
    parts.append("")
    parts.append("Severities (SC-12..SC-14)")
    parts.append(
        _table(
            ["severity", "meaning"],
            [[spec.label, spec.summary] for spec in policy.severities.values()],
        )
    )
    parts.append("")
    sev_a = policy.sev_a
    parts.append(
        "Sev A (SC-15, SC-16, SC-18): "
        + ("needs an online-services agreement; " if sev_a.requires_agreement else "")
        + "technical only; intake requires "
        + (", ".join(sev_a.requires) or "nothing extra")
        + "; downgrade offered after "
        + f"{rules.duration_minutes(sev_a.downgrade_after_silence)} min "
        "without customer response."
    )
    parts.append("")
    parts.append("Out of scope (SC-11)")
    parts.append(
        _table(
            ["topic", "owner"],
            [[spec.label, spec.owner] for spec in policy.out_of_scope.values()],
        )
    )
    parts.append("")
    parts.append(f"Phone (SC-21): {policy.phone.number}")
    parts.append(
        _table(
            ["line", "hours"],
            [
                [line.label, policy.calendars[line.calendar].label]
                for line in policy.phone.lines.values()
            ],
        )
    )
    return "\n".join(parts)
