"""Diagnostics: how gradients flow back through time in a recurrent layer."""

from .gradients import GradientFlow, gradient_flow, plot_gradient_flow, recurrent_spectra

__all__ = ["GradientFlow", "gradient_flow", "plot_gradient_flow", "recurrent_spectra"]
