"""Training logic for one task: build network, loss, optimizer, schedule and EMA; one step; inference."""
