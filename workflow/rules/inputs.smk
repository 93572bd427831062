rule prepare_inputs:
    output:
        batch="results/inputs/{model}/bs{bs}.pt",
        provenance="results/inputs/{model}/bs{bs}.json",
    params:
        settings=input_params,
    log:
        "logs/prepare_inputs/{model}/bs{bs}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/prepare_inputs.py"
