"""The service's views, one module per resource (each exports `routes`)."""
