FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY mrv mrv
COPY methodologies methodologies
COPY data_contracts data_contracts
COPY flows flows
COPY prefect.yaml ./
RUN pip install --no-cache-dir -c constraints.txt '.[postgres]'
