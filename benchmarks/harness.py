"""Results of a benchmark run: one figure per target, its verdict, a table and a JSON file."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
DETAILS_PATH = Path(__file__).resolve().parent / "results.details.json"


@dataclass
class Result:
    """Hold one measured figure and the target it is judged against.

    ``at_most`` says which side of the target passes: ``True`` for "≤ target"
    (slowness, memory, calls), ``False`` for "≥ target" (speed ratios).
    ``measured`` is ``None`` when the benchmark could not run; that never counts as met.
    """

    name: str
    measured: float | None
    target: float
    unit: str
    at_most: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def met(self) -> bool:
        """Judge the measurement against the target."""
        if self.measured is None or math.isnan(self.measured):
            return False
        return self.measured <= self.target if self.at_most else self.measured >= self.target

    @property
    def comparison(self) -> str:
        return "≤" if self.at_most else "≥"

    def to_json(self) -> dict[str, Any]:
        """Return the public record: exactly name, measured, target, unit, met."""
        measured = None if self.measured is None else round(self.measured, 4)
        return {"name": self.name, "measured": measured, "target": self.target, "unit": self.unit,
                "met": self.met}


def failed(name: str, target: float, unit: str, at_most: bool, error: str) -> Result:
    """Return the record of a benchmark that could not produce its figure."""
    return Result(name, None, target, unit, at_most, error=error)


def ratio(numerator: float, denominator: float) -> float:
    """Divide, giving NaN instead of raising when the baseline is zero."""
    return numerator / denominator if denominator else float("nan")


def format_table(results: Sequence[Result]) -> str:
    """Render the results as a fixed-width table, one line per target."""
    rows = [("benchmark", "measured", "target", "unit", "met")]
    for r in results:
        measured = "—" if r.measured is None else f"{r.measured:,.3f}"
        rows.append((r.name, measured, f"{r.comparison} {r.target:g}", r.unit,
                     "yes" if r.met else ("ERROR" if r.error else "NO")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if r.error:
            lines.append(f"! {r.name}: {r.error}")
    return "\n".join(lines)


def write_results(results: Iterable[Result], path: Path = RESULTS_PATH,
                  details_path: Path = DETAILS_PATH) -> None:
    """Write the public list to results.json and every raw figure to results.details.json."""
    results = list(results)
    path.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    details = [{**r.to_json(), "comparison": r.comparison, "detail": r.detail, "error": r.error}
               for r in results]
    details_path.write_text(json.dumps(details, indent=2, default=str) + "\n")


def guarded(names: Sequence[tuple[str, float, str, bool]],
            run: Callable[[], list[Result]]) -> list[Result]:
    """Run one benchmark; if it raises, report each of its targets as an error instead of stopping the run."""
    try:
        return run()
    except Exception as exc:  # a broken benchmark must not hide the figures of the others
        import traceback

        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        return [failed(name, target, unit, at_most, message) for name, target, unit, at_most in names]
