"""`make iac-scan`: checkov on template.yaml, failing on every finding not justified.

checkov ranks findings by severity only with a Prisma Cloud key, which the project does
not have. The policy instead (docs/deploy.md, "Security scan"): every failed check fails
the scan unless docs/deploy.md's table of accepted findings names its check id and
resource, with the reason. That table is the one place skips live (no inline
``checkov:skip``), so the reasons an operator reads are the ones the scan enforces.

checkov evaluates a template's Conditions with the parameters' defaults and ignores
resources whose condition is false, so one scan of the defaults would never look at the
edge. The template is therefore scanned in VARIANTS, each with some defaults overridden.

    python -m pilot_dev.iac_scan            # scan, print findings, exit 1 on any unaccepted
    python -m pilot_dev.iac_scan --json     # the same, findings as JSON lines
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from pilot_dev.runtime.template import _CfnLoader, repo_root

# Parameter defaults overridden per scanned variant: the minimal deploy, the edge on the
# cloudfront.net name (default certificate), the edge on a custom domain. Whoever adds an
# optional feature behind parameters adds it to a variant here.
VARIANTS: dict[str, dict[str, str]] = {
    "minimal": {},
    "edge": {"EnableEdge": "true"},
    "edge-domain": {
        "EnableEdge": "true",
        "DomainName": "pilot.example.com",
        "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/example",
    },
    # alert routing to every channel, and the outside probe (docs/slos.md)
    "alerting": {
        "AlarmEmail": "ops@example.com",
        "AlarmPageEmail": "pager@example.com",
        "AlarmWebhookUrl": "https://hooks.example.com/amazon-pilot",
        "AlarmSlackWorkspaceId": "T0123456789",
        "AlarmSlackChannelId": "C0123456789",
        "ProbeSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:probe-AbCdEf",
    },
}
TABLE_START = "<!-- checkov-accepted:start -->"
TABLE_END = "<!-- checkov-accepted:end -->"


class ScanError(RuntimeError):
    """checkov could not run, or the accepted-findings table cannot be read."""


@dataclass(frozen=True)
class Finding:
    check_id: str
    resource: str  # logical id
    name: str
    variant: str


@dataclass(frozen=True)
class Accepted:
    check_id: str
    resources: tuple[str, ...]  # logical ids or fnmatch patterns ("*LogGroup")
    reason: str

    def covers(self, finding: Finding) -> bool:
        return finding.check_id == self.check_id and any(
            fnmatch.fnmatchcase(finding.resource, pattern) for pattern in self.resources)


def read_accepted(doc: Path) -> list[Accepted]:
    """The rows of the table between the checkov-accepted markers of ``doc``:
    ``| CKV_AWS_x | Resource, Other*, ... | why |``."""
    text = doc.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise ScanError(f"{doc} has no {TABLE_START} ... {TABLE_END} table")
    body = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    rows: list[Accepted] = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("CKV"):
            continue  # header, separator, prose
        resources = tuple(r.strip().strip("`") for r in cells[1].split(",") if r.strip())
        reason = "|".join(cells[2:]).strip()
        if not resources or not reason:
            raise ScanError(f"{doc}: accepted finding {cells[0]} needs resources and a reason")
        rows.append(Accepted(cells[0].strip("`"), resources, reason))
    return rows


def write_variants(template: Path, out: Path) -> dict[str, Path]:
    """One JSON copy of the template per variant (JSON: checkov needs no YAML tags)."""
    raw = yaml.load(template.read_text(), Loader=_CfnLoader)
    params = raw.get("Parameters") or {}
    files: dict[str, Path] = {}
    for variant, overrides in VARIANTS.items():
        copy = json.loads(json.dumps(raw, default=str))
        for name, value in overrides.items():
            if name not in params:
                raise ScanError(f"variant {variant}: the template has no parameter {name}")
            copy["Parameters"][name]["Default"] = value
        path = out / f"{variant}.json"
        path.write_text(json.dumps(copy, indent=1))
        files[variant] = path
    return files


def run_checkov(files: dict[str, Path]) -> list[Finding]:
    checkov = os.environ.get("CHECKOV", str(repo_root() / "scripts" / "checkov.sh"))
    by_path = {str(p.resolve()): v for v, p in files.items()}
    cmd = [checkov, "--framework", "cloudformation", "--output", "json", "--quiet",
           "--compact", "--skip-download", "--soft-fail"]
    for path in files.values():
        cmd += ["--file", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        reports = json.loads(proc.stdout or "null")
    except json.JSONDecodeError as exc:
        raise ScanError(f"checkov did not answer JSON (exit {proc.returncode}):\n"
                        f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}") from exc
    if reports is None or proc.returncode != 0:
        raise ScanError(f"checkov failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    if isinstance(reports, dict):
        reports = [reports]
    findings: set[Finding] = set()
    for report in reports:
        if report.get("check_type") != "cloudformation":
            continue
        for failed in report["results"]["failed_checks"]:
            scanned = str(Path(failed["file_abs_path"]).resolve())
            findings.add(Finding(failed["check_id"], failed["resource"].rsplit(".", 1)[-1],
                                 failed["check_name"], by_path.get(scanned, scanned)))
    return sorted(findings, key=lambda f: (f.check_id, f.resource, f.variant))


def judge(findings: list[Finding], accepted: list[Accepted]
          ) -> tuple[list[Finding], list[Accepted]]:
    """(findings no row accepts, rows that accept nothing any more)."""
    open_ = [f for f in findings if not any(a.covers(f) for a in accepted)]
    stale = [a for a in accepted if not any(a.covers(f) for f in findings)]
    return open_, stale


def scan(template: Path, doc: Path) -> tuple[list[Finding], list[Finding], list[Accepted]]:
    accepted = read_accepted(doc)
    with tempfile.TemporaryDirectory(prefix="iac-scan-") as tmp:
        findings = run_checkov(write_variants(template, Path(tmp)))
    open_, stale = judge(findings, accepted)
    return findings, open_, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iac-scan", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=repo_root() / "template.yaml")
    parser.add_argument("--doc", type=Path, default=repo_root() / "docs" / "deploy.md")
    parser.add_argument("--json", action="store_true", help="findings as JSON lines")
    args = parser.parse_args(argv)
    try:
        findings, open_, stale = scan(args.template, args.doc)
    except ScanError as exc:
        print(f"iac-scan: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for f in findings:
            print(json.dumps({**f.__dict__, "accepted": f not in open_}))
    for row in stale:
        print(f"iac-scan: warning: {row.check_id} on {', '.join(row.resources)} no longer "
              f"fails; remove its row from {args.doc.name}", file=sys.stderr)
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for f in open_:
        grouped.setdefault((f.check_id, f.resource, f.name), []).append(f.variant)
    for (check_id, resource, name), variants_of in grouped.items():
        print(f"iac-scan: NOT ACCEPTED {check_id} {resource} ({', '.join(variants_of)}): "
              f"{name}", file=sys.stderr)
    variants = ", ".join(VARIANTS)
    print(f"iac-scan: checkov on {len(VARIANTS)} variants ({variants}): {len(findings)} "
          f"findings, {len(findings) - len(open_)} accepted in {args.doc.name}, "
          f"{len(open_)} not accepted")
    return 1 if open_ else 0


if __name__ == "__main__":
    sys.exit(main())
