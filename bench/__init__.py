"""lorabench's runner side: Hydra entry point, training, tasks, evaluation, records, reporting."""
