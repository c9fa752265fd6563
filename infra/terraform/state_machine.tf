# The pipeline: the one ASL definition (../statemachine/pipeline.asl.json), rendered
# with the ARN of each stage's function in place of its ${<stage>_arn} placeholder.

resource "aws_sfn_state_machine" "pipeline" {
  name     = local.state_machine_name
  role_arn = aws_iam_role.state_machine.arn
  type     = "STANDARD"

  definition = templatefile("${path.module}/../statemachine/pipeline.asl.json", {
    for s in local.stages : "${s}_arn" => aws_lambda_function.stage[s].arn
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = var.state_machine_log_level
  }

  tracing_configuration {
    enabled = true
  }

  depends_on = [aws_iam_role_policy.state_machine]
}
