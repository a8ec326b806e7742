"""One run: its frame (execute.py: the run directory's lock, config checks, the method, the Trainer's arguments), its
steps (steps.py), the Trainer and its callbacks (trainer.py), data (data.py), models (models.py), the process group
(distributed.py) and the smoke miniature (miniature.py). Import-free, so that a module importing one of them does not
import the run itself."""
