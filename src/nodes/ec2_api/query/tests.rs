use super::*;

/// The shape of the DescribeInstances example in the EC2 API reference (2016-11-15): nested
/// `<item>` sets (groups, tags, interfaces) that must not be read as instances, a spot and an
/// on-demand instance in one reservation, and a next token.
const DESCRIBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <imageId>ami-bff32ccc</imageId>
                    <instanceState>
                        <code>16</code>
                        <name>running</name>
                    </instanceState>
                    <privateDnsName>ip-192-168-1-88.eu-west-1.compute.internal</privateDnsName>
                    <dnsName>ec2-54-194-252-215.eu-west-1.compute.amazonaws.com</dnsName>
                    <reason/>
                    <keyName>my_keypair</keyName>
                    <amiLaunchIndex>0</amiLaunchIndex>
                    <productCodes/>
                    <instanceType>t2.micro</instanceType>
                    <launchTime>2018-05-08T16:46:19.000Z</launchTime>
                    <placement>
                        <availabilityZone>eu-west-1c</availabilityZone>
                        <groupName/>
                        <tenancy>default</tenancy>
                    </placement>
                    <monitoring>
                        <state>disabled</state>
                    </monitoring>
                    <subnetId>subnet-56f5f633</subnetId>
                    <vpcId>vpc-11112222</vpcId>
                    <privateIpAddress>192.168.1.88</privateIpAddress>
                    <sourceDestCheck>true</sourceDestCheck>
                    <groupSet>
                        <item>
                            <groupId>sg-e4076980</groupId>
                            <groupName>SecurityGroup1</groupName>
                        </item>
                    </groupSet>
                    <architecture>x86_64</architecture>
                    <rootDeviceType>ebs</rootDeviceType>
                    <instanceLifecycle>spot</instanceLifecycle>
                    <spotInstanceRequestId>sir-abcd1234</spotInstanceRequestId>
                    <networkInterfaceSet>
                        <item>
                            <networkInterfaceId>eni-551ba033</networkInterfaceId>
                            <privateIpAddressesSet>
                                <item>
                                    <privateIpAddress>192.168.1.88</privateIpAddress>
                                    <primary>true</primary>
                                </item>
                            </privateIpAddressesSet>
                        </item>
                    </networkInterfaceSet>
                    <tagSet>
                        <item>
                            <key>Name</key>
                            <value>Server_1</value>
                        </item>
                        <item>
                            <key>cluster</key>
                            <value>storm &amp; co</value>
                        </item>
                    </tagSet>
                    <ebsOptimized>false</ebsOptimized>
                </item>
                <item>
                    <instanceId>i-0598c7d356eba48d7</instanceId>
                    <instanceState>
                        <code>80</code>
                        <name>stopped</name>
                    </instanceState>
                    <privateDnsName/>
                    <instanceType>c5.xlarge</instanceType>
                    <placement>
                        <availabilityZone>eu-west-1a</availabilityZone>
                    </placement>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken>eyJ2IjoiMiIsImMiOiJ0b2tlbiJ9</nextToken>
</DescribeInstancesResponse>"#;

#[test]
fn describe_instances_reads_the_documented_shape() {
    let page = describe_instances(DESCRIBE).unwrap();
    assert_eq!(
        page.next_token.as_deref(),
        Some("eyJ2IjoiMiIsImMiOiJ0b2tlbiJ9")
    );
    assert_eq!(page.items.len(), 1);
    let r = &page.items[0];
    assert_eq!(r.owner_id.as_deref(), Some("123456789012"));
    assert_eq!(r.instances.len(), 2, "nested <item> sets are not instances");
    let spot = &r.instances[0];
    assert_eq!(
        spot,
        &Instance {
            instance_id: Some("i-1234567890abcdef0".into()),
            state: Some(InstanceState::Running),
            instance_lifecycle: Some("spot".into()),
            instance_type: Some("t2.micro".into()),
            availability_zone: Some("eu-west-1c".into()),
            private_dns_name: Some("ip-192-168-1-88.eu-west-1.compute.internal".into()),
            private_ip_address: Some("192.168.1.88".into()),
            tags: vec![
                ("Name".into(), "Server_1".into()),
                ("cluster".into(), "storm & co".into())
            ],
        }
    );
    let stopped = &r.instances[1];
    assert_eq!(stopped.state, Some(InstanceState::Stopped));
    assert_eq!(
        stopped.instance_lifecycle, None,
        "on-demand has no lifecycle"
    );
    assert_eq!(stopped.private_dns_name.as_deref(), Some(""));
    assert_eq!(stopped.private_ip_address, None);
}

#[test]
fn the_last_page_has_no_token_and_empty_sets_are_empty() {
    let xml = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
        <requestId>x</requestId><reservationSet/><nextToken/></DescribeInstancesResponse>"#;
    let page = describe_instances(xml).unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next_token, None);
}

#[test]
fn an_answer_to_another_action_is_refused() {
    let xml = r#"<TerminateInstancesResponse><instancesSet/></TerminateInstancesResponse>"#;
    let e = describe_instances(xml).unwrap_err().to_string();
    assert!(e.contains("expected <DescribeInstancesResponse>"), "{e}");
    assert!(describe_instances("not xml at all").is_err());
}

#[test]
fn terminate_instances_reads_each_state_change() {
    // The TerminateInstances example of the EC2 API reference.
    let xml = r#"<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
      <instancesSet>
        <item>
          <instanceId>i-1234567890abcdef0</instanceId>
          <currentState><code>32</code><name>shutting-down</name></currentState>
          <previousState><code>16</code><name>running</name></previousState>
        </item>
      </instancesSet>
    </TerminateInstancesResponse>"#;
    assert_eq!(
        terminate_instances(xml).unwrap(),
        vec![StateChange {
            instance_id: "i-1234567890abcdef0".into(),
            current: Some(InstanceState::ShuttingDown),
        }]
    );
}

#[test]
fn spot_fleet_instances_are_the_active_set_with_its_token() {
    // The DescribeSpotFleetInstances example of the EC2 API reference.
    let xml = r#"<DescribeSpotFleetInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
        <requestId>cfb09950-45e2-472d-a6a9-example</requestId>
        <spotFleetRequestId>sfr-73fbd2ce-aa30-494c-8788-1cee4EXAMPLE</spotFleetRequestId>
        <activeInstanceSet>
            <item>
                <instanceId>i-1234567890abcdef0</instanceId>
                <spotInstanceRequestId>sir-1a2b3c4d</spotInstanceRequestId>
                <instanceType>m3.medium</instanceType>
                <instanceHealth>healthy</instanceHealth>
            </item>
            <item>
                <instanceId>i-0598c7d356eba48d7</instanceId>
                <instanceType>m3.medium</instanceType>
            </item>
        </activeInstanceSet>
        <nextToken>next</nextToken>
    </DescribeSpotFleetInstancesResponse>"#;
    let page = describe_spot_fleet_instances(xml).unwrap();
    assert_eq!(page.items, ["i-1234567890abcdef0", "i-0598c7d356eba48d7"]);
    assert_eq!(page.next_token.as_deref(), Some("next"));
}

#[test]
fn an_error_answer_gives_code_message_and_request_id() {
    // The shape of the "Error codes" page of the EC2 API reference.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"#;
    assert_eq!(
        error(xml).unwrap(),
        ErrorBody {
            code: "UnauthorizedOperation".into(),
            message: Some("You are not authorized to perform this operation.".into()),
            request_id: Some("ea966190-f9aa-478e-9ede-example".into()),
        }
    );
    let dry_run = "<Response><Errors><Error><Code>DryRunOperation</Code><Message>Request would \
                   have succeeded, but DryRun flag is set.</Message></Error></Errors>\
                   <RequestID>r</RequestID></Response>";
    assert_eq!(error(dry_run).unwrap().code, "DryRunOperation");
    assert!(error("<html>502 Bad Gateway</html>").is_err());
    assert!(error("<Response><Errors/></Response>").is_err());
}

#[test]
fn parameters_encode_as_the_query_protocol_does() {
    let body = Params::new()
        .filters(&[
            Filter::new("instance-state-name", ["running"]),
            Filter::new("tag:team name", ["a&b", "c=d/e"]),
        ])
        .list("InstanceId", &["i-1".into(), "i-2".into()])
        .set("MaxResults", "1000")
        .set("NextToken", "abc+/=")
        .encode("DescribeInstances");
    assert_eq!(
        body,
        "Action=DescribeInstances&Version=2016-11-15\
         &Filter.1.Name=instance-state-name&Filter.1.Value.1=running\
         &Filter.2.Name=tag%3Ateam%20name&Filter.2.Value.1=a%26b&Filter.2.Value.2=c%3Dd%2Fe\
         &InstanceId.1=i-1&InstanceId.2=i-2&MaxResults=1000&NextToken=abc%2B%2F%3D"
    );
    // A parameter set again replaces the old value (the next page's token).
    let again = Params::new().set("NextToken", "a").set("NextToken", "b");
    assert_eq!(again.encode("X"), "Action=X&Version=2016-11-15&NextToken=b");
}

#[test]
fn spot_price_history_reads_the_documented_shape() {
    // The example answer of the EC2 API reference (DescribeSpotPriceHistory), two points.
    let xml = r#"<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <spotPriceHistorySet>
    <item>
      <instanceType>m3.medium</instanceType>
      <productDescription>Linux/UNIX</productDescription>
      <spotPrice>0.0287</spotPrice>
      <timestamp>2014-01-05T11:11:38.000Z</timestamp>
      <availabilityZone>us-west-2b</availabilityZone>
    </item>
    <item>
      <instanceType>m3.medium</instanceType>
      <productDescription>Linux/UNIX</productDescription>
      <spotPrice>0.0300</spotPrice>
      <timestamp>2014-01-04T09:00:00.000Z</timestamp>
      <availabilityZone>us-west-2b</availabilityZone>
    </item>
  </spotPriceHistorySet>
  <nextToken>tok-2</nextToken>
</DescribeSpotPriceHistoryResponse>"#;
    let page = describe_spot_price_history(xml).unwrap();
    assert_eq!(page.next_token.as_deref(), Some("tok-2"));
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        page.items[0],
        SpotPrice {
            instance_type: "m3.medium".into(),
            availability_zone: "us-west-2b".into(),
            product_description: "Linux/UNIX".into(),
            spot_price: "0.0287".into(),
            timestamp: "2014-01-05T11:11:38.000Z".into(),
        }
    );
    assert_eq!(page.items[1].spot_price, "0.0300");
}
