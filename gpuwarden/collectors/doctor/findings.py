"""A doctor check's result and the exit code a whole run maps to."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # not applicable or not configured here; the detail says why
    ERROR = "error"  # the check itself could not run (unexpected exception)


# ExecStartPre and Slurm's HealthCheckProgram only read the exit code: 0 go, 1 this node is not fit,
# 2 the doctor could not decide (treat as not fit, but page a human rather than drain silently).
EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    check: str  # stable name, also the `check` label of gpuwarden_doctor_check_status
    status: Status
    detail: str
    fix: str = ""  # shown when the check fails: the command or change that makes it pass

    def to_json(self) -> dict[str, str]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d


def passed(check: str, detail: str) -> Finding:
    return Finding(check, Status.PASS, detail)


def failed(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, detail, fix)


def skipped(check: str, why: str) -> Finding:
    return Finding(check, Status.SKIP, why)


def exit_code(findings: list[Finding]) -> int:
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return EXIT_FAIL
    if Status.ERROR in statuses:
        return EXIT_ERROR
    return EXIT_OK
