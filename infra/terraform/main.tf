# irtlake on AWS: one S3 data lake, one Lambda function per pipeline stage (all from
# the same bootstrap.zip), a Step Functions state machine chaining them, a daily
# EventBridge Scheduler trigger, the database secret and the alarms.
# What lives where: see ../README.md.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "irtlake", ManagedBy = "terraform" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}
