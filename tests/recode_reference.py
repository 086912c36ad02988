"""amazon-science/recode's robustness metric code, copied from `run_robust.py` at commit 6688522
(66885222dc277384b0641a621683ee5bcf4eaf5c) to test rrtf.evaluate.robustness against it. run_robust.py
itself cannot be imported here: its first lines import `perturb`, which needs tree-sitter, nlaugmenter
and torch models. The functions below are verbatim (test_robustness.py checks that against the
mirrored file when it is present); `report_coarse` is the body of `report_results_coarse` with its
file reading and CSV writing taken out and `results[dataset][model]` / `nominal_dict[dataset][model]`
renamed `merged` / `nominal_dict` -- its arithmetic lines are unchanged.

Copyright Amazon.com, Inc. or its affiliates. Licensed under the Apache License, Version 2.0
(data/recode/LICENSE): http://www.apache.org/licenses/LICENSE-2.0
"""
# ruff: noqa
from collections import Counter, defaultdict

import numpy as np


def calculate_passatk(data):
    length = len(data)
    cnt = 0
    for d in data:
        if d["passed"]:
            cnt += 1
    return cnt / length


def estimator(n, c, k):
    # calculate estimated passatk for each input problem
    if n - c < k:
        return 1.
    return 1. - np.prod(1. - k/np.arange(n - c + 1, n + 1))


def calculate_passatk_sampling(data, n=1, k=1):
    completion_id = Counter()
    n_samples = 0
    results = defaultdict(list)

    for d in data:
        task_id = d["task_id"]
        results[task_id].append([completion_id[task_id], d["passed"]])
        completion_id[task_id] += 1
        n_samples += 1
    
    single_passatk_list = []
    for task_id in results:
        if len(results) * n == len(data):
            c = sum(d[1] for d in results[task_id])
        else:
            assert n <= len(results[task_id])
            c = sum(results[task_id][ni][1] for ni in range(n))
        single_passatk_list.append(estimator(n, c, k))
    return sum(single_passatk_list) / len(single_passatk_list)


def read_into_dict(data):
    data_dict = {}
    for d in data:
        data_dict[d["task_id"]] = d["passed"]
    return data_dict


def get_worst_passatk_dict(perturbed_data_list):
    assert len(perturbed_data_list) >= 1
    passatk_worst = {}
    for pdata in perturbed_data_list[0]:
        passatk_worst[pdata["task_id"]] = True
    for perturbed_data in perturbed_data_list:
        for pdata in perturbed_data:
            assert pdata["task_id"] in passatk_worst
            passatk_worst[pdata["task_id"]] = passatk_worst[pdata["task_id"]] and pdata["passed"]
    return passatk_worst


def get_worst_passatk_dict_sampling(perturbed_data_list):
    assert len(perturbed_data_list) >= 1
    passatk_worst = defaultdict(list)
    completion_id = Counter()
    for pdata in perturbed_data_list[0]:
        task_id = pdata["task_id"]
        passatk_worst[task_id].append([completion_id[task_id], True])
        completion_id[task_id] += 1
    for perturbed_data in perturbed_data_list:
        completion_id = Counter()
        for pdata in perturbed_data:
            task_id = pdata["task_id"]
            assert task_id in passatk_worst
            passatk_worst[task_id][completion_id[task_id]][1] = passatk_worst[task_id][completion_id[task_id]][1] and pdata["passed"]
            completion_id[task_id] += 1
    return passatk_worst


def get_best_passatk_dict(perturbed_data_list):
    assert len(perturbed_data_list) >= 1
    passatk_best = {}
    for pdata in perturbed_data_list[0]:
        passatk_best[pdata["task_id"]] = False
    for perturbed_data in perturbed_data_list:
        for pdata in perturbed_data:
            assert pdata["task_id"] in passatk_best
            passatk_best[pdata["task_id"]] = passatk_best[pdata["task_id"]] or pdata["passed"]
    return passatk_best


def get_best_passatk_dict_sampling(perturbed_data_list):
    assert len(perturbed_data_list) >= 1
    passatk_best = defaultdict(list)
    completion_id = Counter()
    for pdata in perturbed_data_list[0]:
        task_id = pdata["task_id"]
        passatk_best[task_id].append([completion_id[task_id], False])
        completion_id[task_id] += 1
    for perturbed_data in perturbed_data_list:
        completion_id = Counter()
        for pdata in perturbed_data:
            task_id = pdata["task_id"]
            assert task_id in passatk_best
            passatk_best[task_id][completion_id[task_id]][1] = passatk_best[task_id][completion_id[task_id]][1] or pdata["passed"]
            completion_id[task_id] += 1
    return passatk_best


def calculate_metric(perturbed_data_list, metric, nominal_data):
    """ Get targeted metric numbers
    perturbed_data_list: a list of perturbed data completions, each element is the completion of one seed dataset
    """
    length = len(nominal_data)
    # init worst dict
    # passatk_worst = {}
    # for ndata in nominal_data:
    #     passatk_worst[ndata["task_id"]] = True
    passatk_worst = get_worst_passatk_dict(perturbed_data_list)
    passatk_best = get_best_passatk_dict(perturbed_data_list)
    if metric == "passatk":
        # perturbed pass@k
        passatk_list = []
        for perturbed_data in perturbed_data_list:
            passatk_list.append(calculate_passatk(perturbed_data))
        worst_cnt = 0
        for key in passatk_worst:
            if passatk_worst[key]: 
                worst_cnt += 1
        return passatk_list, worst_cnt / length if passatk_list else " ", passatk_worst

    if metric == "drop":
        # (nominal pass@k - perturbed pass@k) / nominal pass@k
        nominal_passatk = calculate_passatk(nominal_data)
        passatk_list = []
        for perturbed_data in perturbed_data_list:
            perturbed_passatk = calculate_passatk(perturbed_data)
            passatk_list.append((nominal_passatk - perturbed_passatk) / nominal_passatk)
        worst_cnt = 0
        for key in passatk_worst:
            if passatk_worst[key]: 
                worst_cnt += 1
        perturbed_passatk_worst = worst_cnt / length
        return passatk_list, (nominal_passatk - perturbed_passatk_worst) / nominal_passatk if passatk_list else " ", passatk_worst

    if metric == "relative":
        # (nominal != perturbed) / total prompts
        diffset = []
        nominal_dict = {}
        for ndata in nominal_data:
            nominal_dict[ndata["task_id"]] = ndata["passed"]
        relative_list = []
        for perturbed_data in perturbed_data_list:
            relative_cnt = 0
            for pdata in perturbed_data:
                if nominal_dict[pdata["task_id"]] != pdata["passed"]:
                    relative_cnt += 1
                    diffset.append(pdata["task_id"])
            relative_list.append(relative_cnt / length)
        diffset = set(diffset)
        worst_cnt = 0
        for key in passatk_worst:
            if nominal_dict[key] != passatk_worst[key]:
                worst_cnt += 1
            elif nominal_dict[key] != passatk_best[key]:
                worst_cnt += 1
        assert len(diffset) == worst_cnt
        return relative_list, worst_cnt / length  if relative_list else " ", passatk_worst

    if metric == "attack_success":
        # (nominal correct & perturbed incorrect) / nominal correct
        nominal_dict = {}
        correct_cnt = 0
        for ndata in nominal_data:
            nominal_dict[ndata["task_id"]] = ndata["passed"]
            if ndata["passed"]:
                correct_cnt += 1
        success_list = []
        for perturbed_data in perturbed_data_list:
            success_cnt = 0
            for pdata in perturbed_data:
                if nominal_dict[pdata["task_id"]] and not pdata["passed"]:
                    success_cnt += 1
            success_list.append(success_cnt / correct_cnt)
        worst_cnt = 0
        for key in passatk_worst:
            if nominal_dict[key] and not passatk_worst[key]:
                worst_cnt += 1
        return success_list, worst_cnt / correct_cnt  if success_list else " ", passatk_worst


def report_coarse(data_nominal_completed, perturbed_by_type, policy, num_samples=0, k=1):
    """report_results_coarse for one dataset and model: `perturbed_by_type` is, per aug_method, the
    list of its seeds' completion records. Returns (nominal pass@k, passatk, drop %, relative %)."""
    if policy == "greedy":
        nominal_passatk = calculate_passatk(data_nominal_completed)
    else:
        nominal_passatk = calculate_passatk_sampling(data_nominal_completed, n=num_samples, k=k)
    if policy == "greedy":
        nominal_dict = read_into_dict(data_nominal_completed)
    else:
        nominal_dict = get_worst_passatk_dict_sampling([data_nominal_completed])
    merged = None
    for perturbed_data_list in perturbed_by_type:
        passatk_list, passatk_worst, _ = calculate_metric(perturbed_data_list, "passatk", data_nominal_completed)
        if policy == "greedy":
            passatk_worst_dict = get_worst_passatk_dict(perturbed_data_list)
            passatk_best_dict = get_best_passatk_dict(perturbed_data_list)
        else:
            passatk_worst_dict = get_worst_passatk_dict_sampling(perturbed_data_list)
            passatk_best_dict = get_best_passatk_dict_sampling(perturbed_data_list)
        if passatk_list:
            if merged is None:
                merged = [passatk_worst_dict, passatk_best_dict]
            else:
                for key in merged[0]:
                    assert key in passatk_worst_dict and key in passatk_best_dict
                    if policy == "greedy":
                        merged[0][key] = merged[0][key] and passatk_worst_dict[key]
                        merged[1][key] = merged[1][key] or passatk_best_dict[key]
                    else:
                        for completion_id in range(len(merged[0][key])):
                            merged[0][key][completion_id][1] = merged[0][key][completion_id][1] and passatk_worst_dict[key][completion_id][1]
                            merged[1][key][completion_id][1] = merged[1][key][completion_id][1] and passatk_best_dict[key][completion_id][1]

    cnt = 0
    total_cnt = 0
    if policy == "greedy":
        for key in merged[0]:
            if merged[0][key]:
                cnt += 1
            total_cnt += 1
        passatk = cnt / total_cnt
    else:
        single_passatk_list = []
        for task_id in merged[0]:
            assert num_samples <= len(merged[0][task_id])
            c = sum(merged[0][task_id][ni][1] for ni in range(num_samples))
            single_passatk_list.append(estimator(num_samples, c, k))
        passatk = sum(single_passatk_list) / len(single_passatk_list)
    drop = (nominal_passatk - passatk) / nominal_passatk * 100.

    cnt = 0
    total_cnt = 0
    for task_id in merged[0]:
        if policy == "greedy":
            if merged[0][task_id] != nominal_dict[task_id]:
                # worst dict difference
                cnt += 1
            elif merged[1][task_id] != nominal_dict[task_id]:
                # best dict difference
                cnt += 1
        else:
            posc, negc = 0, 0 # for each task_id, how many are pos changes/neg changes out of n
            for completion_id in range(num_samples):
                if merged[0][task_id][completion_id][1] != nominal_dict[task_id][completion_id][1]:
                    # worst dict difference
                    negc += 1
                elif merged[1][task_id][completion_id][1] != nominal_dict[task_id][completion_id][1]:
                    # best dict difference
                    posc += 1
            # estimate the probability of pos change/neg change for each input with sampling k out of n
            cnt += estimator(num_samples, posc, k) + estimator(num_samples, negc, k)
        total_cnt += 1
    relative = cnt / total_cnt * 100.
    return nominal_passatk, passatk, drop, relative
