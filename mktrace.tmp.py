import glob,re,sys
d=sys.argv[1]
M=lambda l: 'process.stderr.write(`%s ${performance.now().toFixed(0)}\\n`);' % l
for p in glob.glob(d+'/src/*.js'):
    s=open(p).read(); o=s
    s=s.replace("    const fromCache = actors.length > MANY_ACTORS ? cachedLocations(actors, cached, known) : [];", M('remote')+"    const fromCache = actors.length > MANY_ACTORS ? cachedLocations(actors, cached, known) : [];"+M('parsed'))
    s=re.sub(r"(      s3 = createS3\d*\(s3Options\);)", M('sdk')+r"\1", s)
    s=s.replace("      early = startVerifying(s3, fromCache, options);", "      early = startVerifying(s3, fromCache, options);"+M('planned'))
    s=s.replace("    const settleable = await settleableEach(actors, data, cached);", "    const settleable = await settleableEach(actors, data, cached);"+M('statted'))
    s=s.replace("    const locations = locationsOf(byUrl.flat(), known);", M('urls')+"    const locations = locationsOf(byUrl.flat(), known);")
    s=s.replace("    const confirm = confirmer(", M('facts')+"    const confirm = confirmer(")
    s=s.replace("async function run(options, mode, given) {","async function run(options, mode, given) {"+M('run'))
    s=s.replace("    const reports = await processAll(", M('process')+"    const reports = await processAll(")
    s=s.replace("    if (cache && writes) await saveCache(", M('save')+"    if (cache && writes) await saveCache(")
    s=re.sub(r"    const page = await s3\.run\(\(\) => (.*?)\);\n", lambda m: "    "+M('send')+" const page = await s3.run(() => "+m.group(1)+");"+M('got')+"\n", s)
    s=s.replace("  const { listings, wanted, listingOf } = planVerify(locations, options);", M('plan2')+"  const { listings, wanted, listingOf } = planVerify(locations, options);"+M('plan2done'))
    if s!=o: open(p,'w').write(s)
m=d+'/src/cli/main.js'; s=open(m).read().split('\n'); s.insert(1,'process.on("exit", () => process.stderr.write(`exit ${performance.now().toFixed(0)}\\n`));'); open(m,'w').write('\n'.join(s))
