"""pilot_dev.publish_web against the AWS endpoint (moto's server): the step of
scripts/deploy.sh that puts the dashboard on the edge bucket."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from amazon_pilot.platform import web
from pilot_dev import publish_web

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(endpoint: str, service: str) -> Any:
    return boto3.session.Session().client(service, region_name=REGION, endpoint_url=endpoint,
                                          aws_access_key_id="testing",
                                          aws_secret_access_key="testing")


def _distribution(cloudfront: Any) -> str:
    config = {
        "CallerReference": "test", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "dashboard",
                                              "DomainName": "b.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "dashboard",
                                 "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    }
    return str(cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def test_publishes_what_the_web_function_serves_then_only_changes(
        endpoint: str, tmp_path: Path, open_aws: None) -> None:
    s3, cloudfront = _client(endpoint, "s3"), _client(endpoint, "cloudfront")
    s3.create_bucket(Bucket="edge-web")
    distribution = _distribution(cloudfront)
    site = tmp_path / "web"
    shutil.copytree(web.asset_root(), site)
    (site / ".hidden.js").write_text("secret")  # the web function serves no dotfile

    first = publish_web.publish(s3, cloudfront, "edge-web", distribution,
                                publish_web.plan(site))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="edge-web")["Contents"]}
    assert "index.html" in keys and "static/index.html" in keys and "static/app.css" in keys
    assert not any(".hidden" in k for k in keys)
    assert not any(k.endswith("LICENSE") for k in keys)  # no known type: 404 in both
    assert set(first["uploaded"]) == keys and first["invalidation"]
    head = s3.head_object(Bucket="edge-web", Key="static/vendor/uplot-1.6.32/uPlot.esm.js")
    assert head["ContentType"] == "text/javascript; charset=utf-8"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert s3.head_object(Bucket="edge-web", Key="index.html")["CacheControl"] == "no-cache"

    again = publish_web.publish(s3, cloudfront, "edge-web", distribution,
                                publish_web.plan(site))
    assert again["uploaded"] == [] and again["deleted"] == [] and again["invalidation"] is None

    (site / "app.css").write_text("body{}")
    (site / "js" / "pages" / "admin.js").unlink()
    s3.put_object(Bucket="edge-web", Key="operator-notes.txt", Body=b"kept")
    third = publish_web.publish(s3, cloudfront, "edge-web", distribution,
                                publish_web.plan(site))
    assert third["uploaded"] == ["static/app.css"]
    assert third["deleted"] == ["static/js/pages/admin.js"]
    body = s3.get_object(Bucket="edge-web", Key="static/app.css")["Body"].read()
    assert body == b"body{}"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="edge-web")["Contents"]}
    assert "operator-notes.txt" in keys  # not ours: left alone
    batch = cloudfront.get_invalidation(DistributionId=distribution, Id=third["invalidation"])
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_finds_the_bucket_in_the_stack_outputs_or_says_there_is_no_edge(
        endpoint: str, open_aws: None) -> None:
    cloudformation = _client(endpoint, "cloudformation")
    with_edge = {"Resources": {"WebBucket": {"Type": "AWS::S3::Bucket"}},
                 "Outputs": {"WebBucketName": {"Value": {"Ref": "WebBucket"}},
                             "DistributionId": {"Value": "E123EXAMPLE"}}}
    cloudformation.create_stack(StackName="with-edge", TemplateBody=json.dumps(with_edge))
    bucket, distribution = publish_web.stack_targets(cloudformation, "with-edge")
    assert distribution == "E123EXAMPLE"
    assert bucket in {b["Name"] for b in _client(endpoint, "s3").list_buckets()["Buckets"]}

    minimal = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cloudformation.create_stack(StackName="minimal", TemplateBody=json.dumps(minimal))
    with pytest.raises(publish_web.PublishError, match="EnableEdge=true"):
        publish_web.stack_targets(cloudformation, "minimal")
    with pytest.raises(publish_web.PublishError, match="missing"):
        publish_web.stack_targets(cloudformation, "missing")


def test_a_site_without_its_page_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app.css").write_text("body{}")
    with pytest.raises(publish_web.PublishError, match=r"no index\.html"):
        publish_web.plan(tmp_path)
