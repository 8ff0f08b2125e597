"""The backend-independent core: recipe, planner, plan, supervisor, runs, plugins."""
