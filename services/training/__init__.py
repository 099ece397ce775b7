"""Fine-tuning jobs: launch with a cost estimate, a local queue and worker, SageMaker and
Bedrock backends behind one protocol, watching, stopping and registering the result."""
