"""Human-readable summaries printed by the CLI."""

from __future__ import annotations

from typing import Any


def format_rate(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:5.1f}%"
    return f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else text


def stage_table(stages: list[dict[str, Any]]) -> str:
    """A fixed-width table: stage, accuracy with 95% CI, n, targeted success with CI."""
    header = f"{'stage':<28} {'accuracy [95% CI]':<24} {'n':>6}  {'targeted success [95% CI]':<26}"
    lines = [header, "-" * len(header)]
    for stage in stages:
        targeted = stage.get("targeted_success")
        target_text = format_rate(targeted["value"], targeted["ci95"]) if targeted else ""
        lines.append(f"{stage['name']:<28} {format_rate(stage['accuracy'], stage['ci95']):<24} "
                     f"{stage['n']:>6}  {target_text:<26}")
    return "\n".join(lines)


def two_way_table(stages: list[dict[str, Any]]) -> str:
    """SCAM's two-way rate (label over written word) beside the accuracy, per text-area bucket; and the
    accuracy on the samples whose word the OCR read ("" when no stage has either)."""
    lines = []
    for stage in stages:
        two_way, reading = stage.get("two_way"), stage.get("legibility")
        if two_way:
            lines.append(f"{stage['name']}: label over written word (two-way) "
                         f"{format_rate(two_way['label_over_word']['value'], two_way['label_over_word']['ci95'])}")
            for bucket in two_way["buckets"]:
                lines.append(f"  text area {bucket['bucket']:<9} n={bucket['n']:<6} accuracy "
                             f"{format_rate(bucket['accuracy']['value']):<7} two-way "
                             f"{format_rate(bucket['label_over_word']['value'])}")
        if reading:
            lines.append(f"{stage['name']}: OCR-legible {format_rate(reading['legible']['value'])}, accuracy on "
                         f"legible samples {format_rate(reading['accuracy_legible']['value'], reading['accuracy_legible']['ci95'])}"
                         f" (n={reading['accuracy_legible']['n']})")
    return "\n".join(lines)


def print_run_summary(outcome) -> None:
    results = outcome.results
    model = results["model"]
    data = results["dataset"]
    print(f"model   {model['label']}" + ("  (RANDOM WEIGHTS: a test model, scores at chance)" if model["random_init"] else ""))
    print(f"data    {data['name']} {data['split']}  n={data['n']}  sample {data['sample_hash'][:12]}")
    print(f"head    {results['head']['kind']}")
    print()
    print(stage_table(results["stages"]))
    print()
    extra = two_way_table(results["stages"])
    if extra:
        print(extra)
        print()
    state = "already complete, nothing re-run" if outcome.resumed_complete else "written"
    checks = results.get("attack_checks")
    if checks is not None:
        flags = checks["flags"]
        print(f"attack checks on {checks['samples']} samples: "
              + ("UNRELIABLE: " + "; ".join(flags) if flags else "no flag (converged, no sign of masked gradients)"))
    print(f"results {outcome.out_dir}/results.json ({state})")
    for note in outcome.notes:
        print(note)
    if outcome.neurons is not None:
        report = outcome.neurons.out_dir / "neurons.md"
        print(f"neurons {report}")
        for analysis in outcome.neurons.report["analyses"]:
            if analysis.get("verdict"):
                print(f"  {analysis['stage']} / {analysis['kind']}: {analysis['verdict']}")
