rule prepare_inputs:
    output:
        batch="results/inputs/{model}/bs{bs}.pt",
        provenance="results/inputs/{model}/bs{bs}.json",
    log:
        "logs/prepare_inputs/{model}/bs{bs}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=input_params,
    script:
        "../scripts/prepare_inputs.py"
