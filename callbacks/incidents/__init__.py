"""Outage incidents: tickets and callbacks about one problem grouped, callers told once when
it is fixed (models in `incident`, grouping and resolving in `grouping`, the suggestion in
`suggestion`, the texts on resolve in `notices`, the settings file in `settings`)."""
