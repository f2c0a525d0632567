"""Not found with real photos of products a catalogue lacks: a Packages-only bundle (built from the protocol's
catalogue CSV filtered to Packages) asked with all val photos; the Fruit and Vegetables photos are the real "not
found" cases. Two folds of val: the confidence model fitted at build, by tune with the labelled Packages photos of
one half, and by tune with that half's Fruit and Vegetables photos as negatives too, each measured on the other
half. Usage: python benchmarks/grocery/not_found_tune.py BUNDLE VAL_QUERIES_CSV."""
import sys, csv, numpy as np

from pathlib import Path
from runtime.retriever import Retriever
from runtime.bundle import open_bundle
from runtime.confidence import non_product_photos
from export.bundle.confidence import Photos, fit, catalogue_images, store_like_views, CalibrationOptions, VIEW_SEED_OFFSET, NEGATIVE_SEED_OFFSET
import export.bundle.confidence as C
b=sys.argv[1]; p=Path(b).name
rows=list(csv.DictReader(open(sys.argv[2])))
rng=np.random.default_rng(0); perm=rng.permutation(len(rows)); halves=[perm[:len(rows)//2], perm[len(rows)//2:]]
opts=CalibrationOptions()
with Retriever.open(b) as r:
    known=set(r.bundle.products[i] for i in range(len(r.bundle.catalog)))
    imgs=catalogue_images(open_bundle(b, verify=False))
    chosen=np.sort(np.random.default_rng(0).permutation(len(imgs))[:opts.rows]); views=[];groups=[]
    for row in chosen:
        path,g=imgs[int(row)]; views+=store_like_views(str(path),opts.views,320,VIEW_SEED_OFFSET,int(row)); groups+=[g]*opts.views
    V=Photos.run(r,views,groups)
    fakes=[im for _,im in non_product_photos(160, NEGATIVE_SEED_OFFSET)]; F=Photos.run(r,fakes,[None]*160)
    T=Photos.run(r,[im for _,im in non_product_photos(160,7)],[None]*160)
    Q=Photos.run(r,[q['image'] for q in rows],[q['group'] if q['group'] in known else None for q in rows])
    def sub(P, idx): return Photos(P.descriptors[idx], [P.matches[i] for i in idx], [P.groups[i] for i in idx])
    for fold in (0,1):
        tr, te = halves[fold], halves[1-fold]
        QA, QB = sub(Q,tr), sub(Q,te)
        for name, photos in (('build', V.join(F)), ('tune+pos', V.join(sub(QA,[i for i,g in enumerate(QA.groups) if g])).join(F)), ('tune+pos+neg', V.join(QA).join(F))):
            model, first = fit(photos, 0.93)
            isneg=np.array([g is None for g in photos.groups]); 
            n_gen=len(F.groups); # generated are the last 160
            realneg=isneg.copy(); realneg[-n_gen:]=False
            rules={'all-neg q93': model.threshold}
            if realneg.any():
                rules['max(per-source q93)']=max(np.quantile(first[-n_gen:],0.93), np.quantile(first[realneg],0.93))
                rules['max(gen q93, real q70)']=max(np.quantile(first[-n_gen:],0.93), np.quantile(first[realneg],0.70))
            for rule,t in rules.items():
                m=C.ConfidenceModel(model.product_weights, model.product_bias, model.match_coef, model.match_bias, float(min(max(t,0),1)))
                def found(P):
                    lg=m.product_logit(P.descriptors); return np.array([m.found(m.confidences(ms[0].score, l)) for ms,l in zip(P.matches,lg)])
                fb=found(QB); pos=np.array([g is not None for g in QB.groups]); right=np.array([g is not None and ms[0].group==g for ms,g in zip(QB.matches,QB.groups)])
                print(f'{p} fold{fold} {name:13} {rule:22} t={t:.3f} pkg kept {fb[pos].mean():.3f} right kept {fb[right].mean():.3f} fruitveg rejected {(~fb[~pos]).mean():.3f} generated rejected {(~found(T)).mean():.3f}')
