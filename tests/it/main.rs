mod aws_store;
mod moto;
