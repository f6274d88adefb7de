"""Parameter sweeps: run a suite at every point of a grid of parameter values, on one session.

    grid     ``--vary PATH=V1,V2`` values, grid expansion, a folder name per point
    runner   the sweep: one harness run per point, resumable, recorded in sweep.json and sweep.log
    table    sweep.csv / sweep.parquet: one row per point x stage
    plots    metric against each parameter, heat map over two

Parameter paths and how a suite is edited by them live with the suites (``typobench.suites.edit``).
"""

from typobench.experiments.sweep.grid import expand_grid, parse_value, parse_vary, point_slug, split_values
from typobench.experiments.sweep.plots import plot_heatmap, plot_metric, plot_sweep
from typobench.experiments.sweep.runner import (
    SWEEP_FILE,
    SWEEP_LOG,
    SweepOptions,
    SweepOutcome,
    SweepPlan,
    default_sweep_dir,
    plan_sweep,
    run_sweep,
)
from typobench.experiments.sweep.table import (
    TABLE_CSV,
    TABLE_PARQUET,
    stage_rows,
    stages_frame,
    sweep_table,
    table_params,
    write_table,
)

__all__ = [
    "SWEEP_FILE", "SWEEP_LOG", "SweepOptions", "SweepOutcome", "SweepPlan", "TABLE_CSV", "TABLE_PARQUET",
    "default_sweep_dir",
    "expand_grid", "parse_value", "parse_vary", "plan_sweep", "plot_heatmap", "plot_metric", "plot_sweep",
    "point_slug", "run_sweep", "split_values", "stage_rows", "stages_frame", "sweep_table", "table_params",
    "write_table",
]
