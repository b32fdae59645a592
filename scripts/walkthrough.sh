#!/usr/bin/env bash
# The escrow slice end to end with curl: sign up a client and a freelancer, create and fund a
# project, deliver, approve, release, then dispute and resolve. Needs a running server
# (`make run`) with an admin (`escrowd create-admin --email admin@example.com --password ...`).
set -euo pipefail
API=${API:-http://localhost:8080}
ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin password 1}
post() { # post CONTEXT COMMAND TOKEN JSON
  curl -s -X POST "$API/v1/$1/commands/$2" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$4"
}
step() { printf '\n$ %s\n' "$*"; }
uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }

signup() { # email role -> token
  post identity register-account "" "{\"email\":\"$1\",\"password\":\"correct horse battery\",\"name\":\"$1\"}" >/dev/null
  local token; token=$(post identity log-in "" "{\"email\":\"$1\",\"password\":\"correct horse battery\"}" | jq -r .result.token)
  post marketplace join-marketplace "$token" "{\"role\":\"$2\"}" >/dev/null
  echo "$token"
}

RUN=$(date +%s)
step "register + log in + join: a client and a freelancer"
CLIENT=$(signup "client-$RUN@example.com" client)
FREELANCER=$(signup "freelancer-$RUN@example.com" freelancer)
FREELANCER_ID=$(post identity log-in "" "{\"email\":\"freelancer-$RUN@example.com\",\"password\":\"correct horse battery\"}" | jq -r .result.accountId)
echo "client token ${CLIENT:0:12}…, freelancer $FREELANCER_ID"

P=$(uuid); M1=$(uuid); M2=$(uuid)
step "create-project (client)"
post marketplace create-project "$CLIENT" "{\"projectId\":\"$P\",\"currency\":\"usd\",\"platformFeePercent\":10,
  \"intakeForm\":{\"title\":\"Landing page\",\"description\":\"Fast\",\"category\":\"web\",\"requiredSkills\":[\"rust\"],
  \"budget\":100000,\"timeline\":\"2 weeks\",\"deliverables\":[\"site\"]}}" | jq -c '{stream,version,position,events:[.events[].type]}'
step "add-milestone x2"
post marketplace add-milestone "$CLIENT" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\",\"title\":\"Design\",\"description\":\"mockups\",\"amount\":60000,\"dueDate\":\"2027-01-01T00:00:00Z\"}" | jq -c '{version,events:[.events[].type]}'
post marketplace add-milestone "$CLIENT" "{\"projectId\":\"$P\",\"milestoneId\":\"$M2\",\"title\":\"Build\",\"description\":\"code\",\"amount\":40000,\"dueDate\":\"2027-02-01T00:00:00Z\"}" | jq -c '{version,events:[.events[].type]}'
step "fund-milestone by the freelancer: refused"
post marketplace fund-milestone "$FREELANCER" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | jq -c .
step "fund-milestone (client), with an Idempotency-Key, sent twice"
curl -s -X POST "$API/v1/marketplace/commands/fund-milestone" -H 'content-type: application/json' -H "authorization: Bearer $CLIENT" -H "Idempotency-Key: fund-$RUN" -d "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | jq -c '{version,position,events:[.events[].type]}'
curl -s -i -X POST "$API/v1/marketplace/commands/fund-milestone" -H 'content-type: application/json' -H "authorization: Bearer $CLIENT" -H "Idempotency-Key: fund-$RUN" -d "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | grep -i '^idempotent-replayed'
step "fund-milestone again without a key: 409"
post marketplace fund-milestone "$CLIENT" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | jq -c .
step "accept-match, start, submit (freelancer), approve (client)"
post marketplace accept-match "$CLIENT" "{\"projectId\":\"$P\",\"freelancerId\":\"$FREELANCER_ID\"}" | jq -c '{version,events:[.events[].type]}'
post marketplace start-milestone "$FREELANCER" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | jq -c '{version,events:[.events[].type]}'
post marketplace submit-milestone "$FREELANCER" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\",\"deliverables\":[{\"name\":\"mockups\",\"url\":\"https://example.com/m\"}]}" | jq -c '{version,events:[.events[].type]}'
APPROVED=$(post marketplace approve-milestone "$CLIENT" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}")
echo "$APPROVED" | jq -c '{version,position,events:[.events[] | {type, autoReleaseAt: .payload.autoReleaseAt}]}'
POS=$(echo "$APPROVED" | jq -r .position)
step "read your write: GET /v1/marketplace/milestones/$M1?after=$POS"
curl -s "$API/v1/marketplace/milestones/$M1?after=$POS" -H "authorization: Bearer $CLIENT" | jq -c '{status,amount,funded,approvedAt,autoReleaseAt}'
step "release-milestone-payment (client; the scheduler would do it 48 h after approval)"
POS=$(post marketplace release-milestone-payment "$CLIENT" "{\"projectId\":\"$P\",\"milestoneId\":\"$M1\"}" | jq -r .position)
curl -s "$API/v1/marketplace/payments?projectId=$P&after=$POS" -H "authorization: Bearer $CLIENT" | jq -c '[.items[] | {type,amount,platformFee,netAmount,status}]'
step "fund-project, then a dispute on the second milestone"
post marketplace fund-project "$CLIENT" "{\"projectId\":\"$P\"}" | jq -c '{version,events:[.events[].type]}'
post marketplace start-milestone "$FREELANCER" "{\"projectId\":\"$P\",\"milestoneId\":\"$M2\"}" >/dev/null
D=$(uuid)
post marketplace open-dispute "$FREELANCER" "{\"projectId\":\"$P\",\"disputeId\":\"$D\",\"milestoneId\":\"$M2\",\"disputeType\":\"payment\",\"reason\":\"scope\",\"description\":\"client changed scope\"}" | jq -c '{version,events:[.events[].type]}'
ADMIN=$(post identity log-in "" "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | jq -r .result.token)
step "resolve-dispute by the client: refused; by an admin: partial 15000"
post marketplace resolve-dispute "$CLIENT" "{\"projectId\":\"$P\",\"disputeId\":\"$D\",\"decision\":\"client_favor\",\"notes\":\"mine\"}" | jq -c .
POS=$(post marketplace resolve-dispute "$ADMIN" "{\"projectId\":\"$P\",\"disputeId\":\"$D\",\"decision\":\"partial\",\"resolutionAmount\":15000,\"notes\":\"half of it was delivered\"}" | jq -r .position)
post marketplace resolve-dispute "$ADMIN" "{\"projectId\":\"$P\",\"disputeId\":\"$D\",\"decision\":\"partial\",\"resolutionAmount\":15000,\"notes\":\"again\"}" | jq -c .
curl -s "$API/v1/marketplace/disputes/$D?after=$POS" -H "authorization: Bearer $ADMIN" | jq -c '{status,lockedAmount,resolution:{decision:.resolution.decision,released:.resolution.releasedAmount,refunded:.resolution.refundedAmount}}'
step "the project's ledger (funded = escrowed + released + refunded)"
curl -s "$API/v1/marketplace/projects/$P?after=$POS" -H "authorization: Bearer $CLIENT" | jq -c '{status,totalAmount,fundedAmount,escrowedAmount,releasedAmount,refundedAmount,feesAmount}'
step "audit: the project's history, its state at version 3, the hash chains"
curl -s "$API/v1/audit/streams/mkt-project-$P" -H "authorization: Bearer $ADMIN" | jq -c '[.events[] | {v:.version,type,actor:.metadata.actor_role}]'
curl -s "$API/v1/audit/streams/mkt-project-$P/state?version=3" -H "authorization: Bearer $ADMIN" | jq -c '{version,status:.state.status,milestones:(.state.milestones|length)}'
curl -s "$API/v1/audit/verify" -H "authorization: Bearer $ADMIN" | jq -c .
step "an unindexed filter is refused"
curl -s "$API/v1/marketplace/milestones?title=Design" -H "authorization: Bearer $CLIENT" | jq -c .
