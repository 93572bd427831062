rule measure_energy:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        energy="results/energy/{platform}/{model}/bs{bs}.json",
    log:
        "logs/measure_energy/{platform}/{model}/bs{bs}.log",
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
        gpu=gpus,
    params:
        settings=energy_params,
    script:
        "../scripts/measure_energy.py"
