terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # logging_config on aws_lambda_function needs >= 5.31.
      version = "~> 5.31"
    }
  }
}
