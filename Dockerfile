# The image the README's Kubernetes Job names. Stage 1 builds and packs; stage 2 holds only what
# `npm pack` publishes (dist/) and its production dependencies at the lockfile's versions.
# test/package.test.ts does what stage 2 does, without a container runtime.
FROM node:20-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm pack --pack-destination /tmp \
 && mkdir /app && tar -xzf /tmp/actor-sync-*.tgz -C /app --strip-components=1 \
 && cp package-lock.json /app/

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# The data root is mounted at /data (`--root /data`); it must be writable by uid 1000 (node).
USER node
VOLUME /data
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--help"]
