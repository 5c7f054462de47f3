"""Time-series forecasting with recurrent networks."""
