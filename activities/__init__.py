"""Side effects of the internship workflow, one module per concern: records, notify, badge."""
