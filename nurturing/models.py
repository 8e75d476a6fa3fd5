# Sequences, steps, enrollments and deliveries arrive with the nurturing engine.
