"""The model tier on Ray Serve: replicas of the engine (replica.py), the front's handle to them (front.py), and
starting both (start.py). Nothing here is imported unless `serve --replicas` asks for it: Ray is an optional extra."""
