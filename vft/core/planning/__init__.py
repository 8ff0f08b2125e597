"""Planning: the GPU split, memory fit, cost and the pure planner `plan(recipe, target)`."""
