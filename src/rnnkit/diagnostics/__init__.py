"""Diagnostics: how gradients flow back through time in a recurrent layer; what its gates and units do."""

from .gates import (
    GateActivations,
    GateStatistics,
    gate_activations,
    gate_statistics,
    plot_gate_heatmaps,
    plot_gate_trace,
)
from .gradients import GradientFlow, gradient_flow, plot_gradient_flow, recurrent_spectra
from .training import grad_norm_summary, plot_grad_norms, read_grad_norms
from .units import UnitMatch, feature_tracks, find_units, unit_activations, units_html

__all__ = [
    "GateActivations", "GateStatistics", "GradientFlow", "UnitMatch", "feature_tracks", "find_units",
    "gate_activations", "gate_statistics", "gradient_flow", "plot_gate_heatmaps", "plot_gate_trace",
    "plot_gradient_flow", "recurrent_spectra", "unit_activations", "units_html",
    "grad_norm_summary", "plot_grad_norms", "read_grad_norms",
]  # fmt: skip
